//! ACME writes, group-committed: one writer task applies every ACME write that arrived
//! while the last transaction ran (nonces recorded as used, state transitions, new orders,
//! validations started with their job) in one transaction per tenant, each op in its own
//! savepoint, so a burst of requests costs one commit (one fsync on SQLite) instead of one
//! each. Every caller still waits until its write is durably committed before it answers.

use crate::error::{AuthorityError, ErrorKind};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use trustbox_store::{AcmeOp, AcmeOpOutcome, Store, StoreError};
use trustbox_types::{Clock, TenantId};

type Reply = oneshot::Sender<Result<AcmeOpOutcome, StoreError>>;
type Item = (TenantId, AcmeOp, Reply);

/// Most ops per transaction.
const MAX_BATCH: usize = 512;
/// Most ops waiting; beyond it requests are shed (`Unavailable`).
const QUEUE: usize = 8192;

/// Handle to the ACME writer task.
#[derive(Clone, Debug)]
pub(crate) struct AcmeWriter {
    tx: mpsc::Sender<Item>,
}

impl AcmeWriter {
    /// Starts the writer task (within a Tokio runtime).
    pub(crate) fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, clock, rx));
        Self { tx }
    }

    /// Applies `op` for `tenant`, returning once it is committed.
    pub(crate) async fn apply(
        &self,
        tenant: TenantId,
        op: AcmeOp,
    ) -> Result<AcmeOpOutcome, AuthorityError> {
        let (reply, wait) = oneshot::channel();
        self.tx.try_send((tenant, op, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AuthorityError::new(
                ErrorKind::Unavailable,
                "overloaded",
                "too many requests in flight; retry shortly",
            ),
            mpsc::error::TrySendError::Closed(_) => AuthorityError::internal("ACME writer stopped"),
        })?;
        match wait.await {
            Ok(Ok(AcmeOpOutcome::Failed(e))) | Ok(Err(e)) => Err(e.into()),
            Ok(Ok(outcome)) => Ok(outcome),
            Err(_) => Err(AuthorityError::internal("ACME writer dropped a request")),
        }
    }

    /// Records a nonce as used; `false` if it was used before.
    pub(crate) async fn consume(
        &self,
        tenant: TenantId,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, AuthorityError> {
        let op = AcmeOp::Nonce {
            id: id.to_owned(),
            expires_at,
        };
        match self.apply(tenant, op).await? {
            AcmeOpOutcome::Fresh(f) => Ok(f),
            _ => Err(AuthorityError::internal("unexpected nonce outcome")),
        }
    }

    /// Applies a compare-and-set group (optionally with a job): whether it applied.
    pub(crate) async fn changes(
        &self,
        tenant: TenantId,
        op: AcmeOp,
    ) -> Result<bool, AuthorityError> {
        match self.apply(tenant, op).await? {
            AcmeOpOutcome::Applied(a) => Ok(a),
            _ => Err(AuthorityError::internal("unexpected change outcome")),
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
        let mut by_tenant: HashMap<TenantId, (Vec<AcmeOp>, Vec<Reply>)> = HashMap::new();
        for (tenant, op, reply) in batch {
            let e = by_tenant.entry(tenant).or_default();
            e.0.push(op);
            e.1.push(reply);
        }
        let now = clock.now().unix_timestamp();
        for (tenant, (ops, replies)) in by_tenant {
            match store.apply_acme_batch(tenant, &ops, now).await {
                Ok(outcomes) => {
                    for (reply, o) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(o));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::Backend(text.clone())));
                    }
                }
            }
        }
    }
}

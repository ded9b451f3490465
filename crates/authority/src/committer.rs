//! Group commit: one writer task batches concurrent issuances into one transaction.
//!
//! Durability is never traded for speed: every caller waits until the transaction holding
//! its certificate and audit event has committed. Throughput comes from amortizing one
//! commit (one fsync on SQLite) over every request that arrived while the last one ran.

use crate::error::{AuthorityError, ErrorKind};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use trustbox_store::{IssuanceRecord, Store, StoreError};

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommitter {
    tx: mpsc::Sender<(IssuanceRecord, Reply)>,
}

impl GroupCommitter {
    /// Starts the writer task; at most `max_batch` records per transaction and at most
    /// `queue` records waiting (more are shed with 503).
    pub(crate) fn start(store: Arc<dyn Store>, max_batch: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue);
        tokio::spawn(writer(store, rx, max_batch));
        Self { tx }
    }

    /// Commits `record`, returning once it is durable.
    pub(crate) async fn commit(&self, record: IssuanceRecord) -> Result<(), AuthorityError> {
        let (reply, wait) = oneshot::channel();
        self.tx.try_send((record, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AuthorityError::new(
                ErrorKind::Unavailable,
                "overloaded",
                "the issuance queue is full; retry shortly",
            ),
            mpsc::error::TrySendError::Closed(_) => {
                AuthorityError::internal("group committer stopped")
            }
        })?;
        match wait.await {
            Ok(result) => result.map_err(AuthorityError::from),
            Err(_) => Err(AuthorityError::internal(
                "group committer dropped a request",
            )),
        }
    }
}

fn drain(
    rx: &mut mpsc::Receiver<(IssuanceRecord, Reply)>,
    records: &mut Vec<IssuanceRecord>,
    replies: &mut Vec<Reply>,
    max_batch: usize,
) {
    while records.len() < max_batch {
        match rx.try_recv() {
            Ok((rec, reply)) => {
                records.push(rec);
                replies.push(reply);
            }
            Err(_) => break,
        }
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(IssuanceRecord, Reply)>,
    max_batch: usize,
) {
    let mut records = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut last_batch = 0usize;
    while let Some((rec, reply)) = rx.recv().await {
        records.push(rec);
        replies.push(reply);
        drain(&mut rx, &mut records, &mut replies, max_batch);
        // Under concurrency, linger a moment so one commit (one fsync, one write of each
        // touched index page) covers more issuances; an idle server commits at once.
        if last_batch > 1 && records.len() < max_batch / 4 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            drain(&mut rx, &mut records, &mut replies, max_batch);
        }
        last_batch = records.len();
        metrics::histogram!("trustbox_store_commit_batch_size").record(records.len() as f64);
        let started = std::time::Instant::now();
        match store.commit_issuances(&records).await {
            Ok(()) => {
                for reply in replies.drain(..) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if records.len() > 1 => {
                // One bad record (a serial collision) must not fail its neighbours:
                // commit each alone so only the culprit sees the error.
                tracing::warn!(error = %e, batch = records.len(), "batch commit failed; retrying one by one");
                for (rec, reply) in records.iter().zip(replies.drain(..)) {
                    let _ = reply.send(store.commit_issuances(std::slice::from_ref(rec)).await);
                }
            }
            // One record: its own error, kind intact (a conflict stays a conflict).
            Err(e) => {
                if let Some(reply) = replies.pop() {
                    let _ = reply.send(Err(e));
                }
                replies.clear();
            }
        }
        metrics::histogram!("trustbox_store_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        records.clear();
    }
}

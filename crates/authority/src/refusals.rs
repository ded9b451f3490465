//! Refused requests are audited in batches: a flood of bad requests costs one append (one
//! fsync on SQLite) per batch, not one per request, and each event's details are bounded so
//! a client cannot make the chain store what it sends.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use trustbox_store::{NewAuditEvent, Store};

/// Most refusals waiting to be written; senders wait beyond it (backpressure on refused
/// requests only).
const QUEUE: usize = 4096;
/// Most refusals appended in one transaction.
const BATCH: usize = 256;
/// How long the writer lingers for more refusals once one arrived.
const LINGER: Duration = Duration::from_millis(20);
/// The longest text kept from a request in a refusal's resource or detail.
pub(crate) const MAX_RECORDED_CHARS: usize = 200;

/// `s` cut to at most `MAX_RECORDED_CHARS` characters (marked when cut).
pub(crate) fn bounded(s: &str) -> String {
    if s.chars().count() <= MAX_RECORDED_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_RECORDED_CHARS).collect();
    out.push('…');
    out
}

/// Handle to the refusal writer.
#[derive(Clone, Debug)]
pub(crate) struct RefusalAuditor {
    tx: mpsc::Sender<NewAuditEvent>,
}

impl RefusalAuditor {
    /// Starts the writer task.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Queues `event`; returns once it is queued (not yet written: the request is refused
    /// either way).
    pub(crate) async fn record(&self, event: NewAuditEvent) {
        if self.tx.send(event).await.is_err() {
            tracing::warn!("refusal auditor stopped; a refusal went unrecorded");
        }
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<NewAuditEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(e)) => batch.push(e),
                Ok(None) | Err(_) => break,
            }
        }
        metrics::histogram!("trustbox_audit_refusal_batch").record(batch.len() as f64);
        if let Err(e) = store.append_audit(&batch).await {
            tracing::warn!(error = %e, events = batch.len(), "could not record refusals in the audit chain");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_is_bounded() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(10_000);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_RECORDED_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}

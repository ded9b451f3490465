//! The audit hash chain: each event's hash covers its predecessor's hash and every field.

use crate::records::AuditEvent;
use trustbox_types::TenantId;

/// The `prev_hash` of a chain's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash and the event's fields, each length-prefixed so no two
/// different events can serialize alike. Lowercase hex.
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    prev_hash: &str,
    seq: i64,
    tenant: TenantId,
    at_us: i64,
    actor: &str,
    action: &str,
    resource: &str,
    outcome: &str,
    details: &str,
) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let tenant = tenant.to_string();
    let seq = seq.to_string();
    let at = at_us.to_string();
    for field in [
        prev_hash, &seq, &tenant, &at, actor, action, resource, outcome, details,
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish())
}

/// The first place a chain fails to verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event seq {seq}: {reason}")]
pub struct ChainBreak {
    /// Sequence number of the first bad event.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Verifies a run of events that continues a chain whose last verified event had hash
/// `prev` and sequence `prev_seq` (use [`GENESIS_HASH`] and 0 at the start). Returns the new
/// `(prev_seq, prev)` to continue from.
pub fn verify_events(
    mut prev_seq: i64,
    mut prev: String,
    events: &[AuditEvent],
) -> Result<(i64, String), ChainBreak> {
    for e in events {
        let brk = |reason: &str| ChainBreak {
            seq: e.seq,
            reason: reason.to_owned(),
        };
        if e.seq != prev_seq + 1 {
            return Err(ChainBreak {
                seq: prev_seq + 1,
                reason: format!("event missing (next stored event is seq {})", e.seq),
            });
        }
        if e.prev_hash != prev {
            return Err(brk("prev_hash does not match the preceding event's hash"));
        }
        let expect = event_hash(
            &e.prev_hash,
            e.seq,
            e.tenant,
            e.at_us,
            &e.actor,
            &e.action,
            &e.resource,
            &e.outcome,
            &e.details,
        );
        if expect != e.hash {
            return Err(brk("contents do not match the event's hash (edited)"));
        }
        prev_seq = e.seq;
        prev = e.hash.clone();
    }
    Ok((prev_seq, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEvent> {
        let tenant = TenantId::generate();
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let hash = event_hash(
                    &prev,
                    seq,
                    tenant,
                    seq * 10,
                    "a",
                    "x.y",
                    "r",
                    "success",
                    "{}",
                );
                let e = AuditEvent {
                    seq,
                    tenant,
                    at_us: seq * 10,
                    actor: "a".into(),
                    action: "x.y".into(),
                    resource: "r".into(),
                    outcome: "success".into(),
                    details: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies_and_edits_are_located() {
        let events = chain(5);
        assert_eq!(
            verify_events(0, GENESIS_HASH.into(), &events)
                .expect("intact")
                .0,
            5
        );
        let mut edited = events.clone();
        edited[2].outcome = "denied".into();
        assert_eq!(
            verify_events(0, GENESIS_HASH.into(), &edited)
                .expect_err("edited")
                .seq,
            3
        );
        let mut removed = events.clone();
        removed.remove(1);
        assert_eq!(
            verify_events(0, GENESIS_HASH.into(), &removed)
                .expect_err("gap")
                .seq,
            2
        );
        let mut rehashed = events;
        rehashed[3].details = "{\"x\":1}".into();
        let h = event_hash(
            &rehashed[3].prev_hash,
            4,
            rehashed[3].tenant,
            40,
            "a",
            "x.y",
            "r",
            "success",
            "{\"x\":1}",
        );
        rehashed[3].hash = h;
        // Recomputing one event's hash breaks the link to its successor.
        assert_eq!(
            verify_events(0, GENESIS_HASH.into(), &rehashed)
                .expect_err("relinked")
                .seq,
            5
        );
    }

    #[test]
    fn fields_are_unambiguous() {
        let t = TenantId::generate();
        assert_ne!(
            event_hash(GENESIS_HASH, 1, t, 0, "ab", "c", "", "", ""),
            event_hash(GENESIS_HASH, 1, t, 0, "a", "bc", "", "", "")
        );
    }
}

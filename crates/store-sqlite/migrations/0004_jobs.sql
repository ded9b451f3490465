-- TrustBox schema v4 (SQLite): background jobs with explicit states, and the outbox.
--
-- At most one job per (tenant, kind, key) is active (pending, running, retry_wait); the
-- runner claims due jobs inside BEGIN IMMEDIATE, so one claimer at a time. Final state
-- changes write an outbox row in the same transaction.

CREATE TABLE jobs (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'retry_wait', 'completed', 'failed', 'abandoned', 'cancelled')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL CHECK (max_attempts >= 1),
    run_at       BIGINT NOT NULL,
    lease_holder TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX jobs_active ON jobs (tenant_id, kind, dedupe_key)
    WHERE state IN ('pending', 'running', 'retry_wait');
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'retry_wait');
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (tenant_id, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    topic     TEXT NOT NULL,
    payload   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX outbox_tenant ON outbox (tenant_id, seq);
CREATE INDEX outbox_at ON outbox (tenant_id, at);

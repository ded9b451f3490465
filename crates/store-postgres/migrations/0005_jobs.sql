-- TrustBox schema v5 (PostgreSQL): background jobs with explicit states, and the outbox.
--
-- At most one job per (tenant, kind, key) is active (pending, running, retry_wait). Claims
-- cross tenants, so they go through one SECURITY DEFINER function that locks candidate rows
-- with FOR UPDATE SKIP LOCKED: replicas claiming together never get the same job. Final
-- state changes write an outbox row in the same transaction. Both tables are tenant-owned
-- under row-level security like the rest.

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
    seq       BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    topic     TEXT NOT NULL,
    payload   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX outbox_tenant ON outbox (tenant_id, seq);
CREATE INDEX outbox_at ON outbox (tenant_id, at);

GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, outbox TO trustbox_app;
GRANT SELECT, UPDATE ON jobs TO trustbox_system;
GRANT INSERT ON outbox TO trustbox_system;
GRANT USAGE ON SEQUENCE outbox_seq_seq TO trustbox_app, trustbox_system;

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_claim ON jobs TO trustbox_system USING (true) WITH CHECK (true);

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_announce ON outbox FOR INSERT TO trustbox_system WITH CHECK (true);

-- The claim: abandon running jobs whose lease lapsed after their last attempt (announcing
-- each), then start an attempt of up to `most` due jobs, skipping rows another claimer holds.
CREATE FUNCTION tb_claim_jobs(holder TEXT, now_s BIGINT, until BIGINT, most INT) RETURNS SETOF jobs
    LANGUAGE sql VOLATILE SECURITY DEFINER
    AS 'WITH gone AS (UPDATE jobs SET state = ''abandoned'', lease_holder = NULL, lease_until = NULL, finished_at = now_s, updated_at = now_s, last_error = ''the worker holding it stopped after its last attempt'' WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs WHERE state = ''running'' AND lease_until < now_s AND attempts >= max_attempts FOR UPDATE SKIP LOCKED) RETURNING tenant_id, id, kind, dedupe_key, attempts) INSERT INTO outbox (tenant_id, topic, payload, at) SELECT tenant_id, ''job.abandoned'', json_build_object(''job'', id, ''kind'', kind, ''key'', dedupe_key, ''attempts'', attempts, ''error'', ''the worker holding it stopped after its last attempt'')::text, now_s FROM gone; UPDATE jobs j SET state = ''running'', attempts = j.attempts + 1, lease_holder = holder, lease_until = until, updated_at = now_s FROM (SELECT tenant_id, id FROM jobs WHERE (state IN (''pending'', ''retry_wait'') AND run_at <= now_s) OR (state = ''running'' AND lease_until < now_s AND attempts < max_attempts) ORDER BY run_at LIMIT most FOR UPDATE SKIP LOCKED) c WHERE j.tenant_id = c.tenant_id AND j.id = c.id RETURNING j.*';
DO $$ BEGIN ALTER FUNCTION tb_claim_jobs(text, bigint, bigint, integer) OWNER TO trustbox_system; EXECUTE format('ALTER FUNCTION tb_claim_jobs(text, bigint, bigint, integer) SET search_path = %I', current_schema()); REVOKE ALL ON FUNCTION tb_claim_jobs(text, bigint, bigint, integer) FROM PUBLIC; GRANT EXECUTE ON FUNCTION tb_claim_jobs(text, bigint, bigint, integer) TO trustbox_app; END $$;

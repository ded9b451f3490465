-- TrustBox schema v3 (PostgreSQL): tenant isolation by construction, expiring tokens,
-- signed audit checkpoints. Every reference to a tenant-owned row carries the tenant:
-- (tenant_id, issuer_id) -> issuers (tenant_id, id) and so on, so no row can point at
-- another tenant's issuer or certificate whatever the code above does.
ALTER TABLE issuers ADD CONSTRAINT issuers_tenant_id_key UNIQUE (tenant_id, id);
ALTER TABLE issuers DROP CONSTRAINT issuers_parent_id_fkey;
ALTER TABLE issuers ADD CONSTRAINT issuers_parent_fkey
    FOREIGN KEY (tenant_id, parent_id) REFERENCES issuers (tenant_id, id);

ALTER TABLE certificates ADD CONSTRAINT certificates_tenant_id_key UNIQUE (tenant_id, id);
DROP INDEX certificates_tenant_id;
ALTER TABLE certificates DROP CONSTRAINT certificates_issuer_id_fkey;
ALTER TABLE certificates ADD CONSTRAINT certificates_issuer_fkey
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id);

ALTER TABLE certificate_sans DROP CONSTRAINT certificate_sans_certificate_id_fkey;
ALTER TABLE certificate_sans ADD CONSTRAINT certificate_sans_certificate_fkey
    FOREIGN KEY (tenant_id, certificate_id) REFERENCES certificates (tenant_id, id);

ALTER TABLE crl_shards DROP CONSTRAINT crl_shards_issuer_id_fkey;
ALTER TABLE crl_shards ADD CONSTRAINT crl_shards_issuer_fkey
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id);

ALTER TABLE ocsp_responders DROP CONSTRAINT ocsp_responders_issuer_id_fkey;
ALTER TABLE ocsp_responders ADD CONSTRAINT ocsp_responders_issuer_fkey
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id);

-- Tokens may expire (Unix seconds; NULL: never).
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- Each tenant's audit key (sealed in custody like CA keys) signs checkpoints of its chain.
CREATE TABLE audit_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    public_key_der  BYTEA NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX audit_keys_tenant ON audit_keys (tenant_id, created_at);

-- Signed checkpoints of a tenant's chain head: (tenant, seq, hash, time) under its audit key.
CREATE TABLE audit_checkpoints (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    at_us       BIGINT NOT NULL,
    key_id      TEXT NOT NULL,
    signature   BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, key_id) REFERENCES audit_keys (tenant_id, id)
);

-- Revocations of certificates, tokens and issuer changes, in commit order: every replica
-- polls this feed (by sequence number, never by wall clock) to drop what it has cached.
-- Sequence numbers come from one counter row locked until the writing transaction commits,
-- so a reader that has seen seq N has seen every change numbered below N.
CREATE TABLE change_counter (
    id   INT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);
CREATE TABLE changes (
    seq         BIGINT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    ref         TEXT NOT NULL,
    at          BIGINT NOT NULL
);

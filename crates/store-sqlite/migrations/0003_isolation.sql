-- TrustBox schema v3 (SQLite): tenant isolation by construction, expiring tokens, signed
-- audit checkpoints.
--
-- Every reference to a tenant-owned row carries the tenant: (tenant_id, issuer_id) ->
-- issuers (tenant_id, id) and so on, so no row can point at another tenant's issuer or
-- certificate whatever the code above does. SQLite cannot add a constraint to a table, so
-- the referencing tables are rebuilt; the store runs this script with foreign_keys off and
-- checks `PRAGMA foreign_key_check` before it commits.

CREATE TABLE issuers_v3 (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    parent_id       TEXT,
    certificate_der BLOB NOT NULL,
    common_name     TEXT NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BLOB NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    crl_shards      BIGINT NOT NULL DEFAULT 1,
    ocsp_enabled    BIGINT NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES issuers (tenant_id, id)
);
INSERT INTO issuers_v3 (id, tenant_id, name, parent_id, certificate_der, common_name, key_backend,
    key_algorithm, key_wrapped, not_before, not_after, created_at, crl_shards, ocsp_enabled)
    SELECT id, tenant_id, name, parent_id, certificate_der, common_name, key_backend,
    key_algorithm, key_wrapped, not_before, not_after, created_at, crl_shards, ocsp_enabled FROM issuers;
DROP TABLE issuers;
ALTER TABLE issuers_v3 RENAME TO issuers;

CREATE TABLE certificates_v3 (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    issuer_id         TEXT NOT NULL,
    serial            TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    common_name       TEXT,
    sans              TEXT NOT NULL,
    key_algorithm     TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    status            TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT,
    profile           TEXT NOT NULL,
    source            TEXT NOT NULL,
    der               BLOB NOT NULL,
    created_at        BIGINT NOT NULL,
    crl_shard         BIGINT NOT NULL DEFAULT 0,
    invalidity_date   BIGINT,
    UNIQUE (issuer_id, serial),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id)
);
INSERT INTO certificates_v3 (id, tenant_id, issuer_id, serial, fingerprint, common_name, sans,
    key_algorithm, not_before, not_after, status, revoked_at, revocation_reason, profile, source, der,
    created_at, crl_shard, invalidity_date)
    SELECT id, tenant_id, issuer_id, serial, fingerprint, common_name, sans,
    key_algorithm, not_before, not_after, status, revoked_at, revocation_reason, profile, source, der,
    created_at, crl_shard, invalidity_date FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v3 RENAME TO certificates;
CREATE INDEX certificates_tenant_status ON certificates (tenant_id, status, id);
CREATE INDEX certificates_tenant_issuer ON certificates (tenant_id, issuer_id, id);
CREATE INDEX certificates_tenant_not_after ON certificates (tenant_id, not_after);
CREATE INDEX certificates_tenant_cn ON certificates (tenant_id, common_name);
CREATE INDEX certificates_fingerprint ON certificates (fingerprint);
CREATE INDEX certificates_revoked ON certificates
    (tenant_id, issuer_id, crl_shard, not_after, serial, revoked_at, revocation_reason, invalidity_date)
    WHERE status = 'revoked';
CREATE INDEX certificates_revoked_at ON certificates (tenant_id, revoked_at) WHERE status = 'revoked';

CREATE TABLE certificate_sans_v3 (
    tenant_id       TEXT NOT NULL,
    certificate_id  TEXT NOT NULL,
    value           TEXT NOT NULL,
    FOREIGN KEY (tenant_id, certificate_id) REFERENCES certificates (tenant_id, id)
);
INSERT INTO certificate_sans_v3 (tenant_id, certificate_id, value)
    SELECT tenant_id, certificate_id, value FROM certificate_sans;
DROP TABLE certificate_sans;
ALTER TABLE certificate_sans_v3 RENAME TO certificate_sans;
CREATE INDEX certificate_sans_value ON certificate_sans (tenant_id, value);

CREATE TABLE crl_shards_v3 (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    issuer_id           TEXT NOT NULL,
    shard               BIGINT NOT NULL,
    revision            BIGINT NOT NULL,
    published_revision  BIGINT NOT NULL,
    crl_number          BIGINT NOT NULL,
    this_update         BIGINT,
    next_update         BIGINT,
    refresh_at          BIGINT,
    der                 BLOB,
    PRIMARY KEY (issuer_id, shard),
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id)
);
INSERT INTO crl_shards_v3 (tenant_id, issuer_id, shard, revision, published_revision, crl_number,
    this_update, next_update, refresh_at, der)
    SELECT tenant_id, issuer_id, shard, revision, published_revision, crl_number,
    this_update, next_update, refresh_at, der FROM crl_shards;
DROP TABLE crl_shards;
ALTER TABLE crl_shards_v3 RENAME TO crl_shards;
CREATE INDEX crl_shards_tenant ON crl_shards (tenant_id, issuer_id, shard);

CREATE TABLE ocsp_responders_v3 (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    issuer_id       TEXT NOT NULL,
    certificate_der BLOB NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BLOB NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, issuer_id) REFERENCES issuers (tenant_id, id)
);
INSERT INTO ocsp_responders_v3 (id, tenant_id, issuer_id, certificate_der, key_backend, key_algorithm,
    key_wrapped, not_before, not_after, created_at)
    SELECT id, tenant_id, issuer_id, certificate_der, key_backend, key_algorithm,
    key_wrapped, not_before, not_after, created_at FROM ocsp_responders;
DROP TABLE ocsp_responders;
ALTER TABLE ocsp_responders_v3 RENAME TO ocsp_responders;
CREATE INDEX ocsp_responders_issuer ON ocsp_responders (tenant_id, issuer_id, not_after);

-- Tokens may expire (Unix seconds; NULL: never).
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- Each tenant's audit key (sealed in custody like CA keys) signs checkpoints of its chain.
CREATE TABLE audit_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    public_key_der  BLOB NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BLOB NOT NULL,
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
    signature   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, key_id) REFERENCES audit_keys (tenant_id, id)
);

-- Revocations of certificates, tokens and issuer changes, in commit order: every replica
-- polls this feed (by sequence number, never by wall clock) to drop what it has cached.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    ref         TEXT NOT NULL,
    at          BIGINT NOT NULL
);

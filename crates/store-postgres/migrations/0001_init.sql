-- TrustBox schema v1 (PostgreSQL). Times are Unix seconds; audit times are microseconds.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE audit_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    at_us       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant_id, id);

CREATE TABLE issuers (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    parent_id       TEXT REFERENCES issuers(id),
    certificate_der BYTEA NOT NULL,
    common_name     TEXT NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BYTEA NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE certificates (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    issuer_id         TEXT NOT NULL REFERENCES issuers(id),
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
    der               BYTEA NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (issuer_id, serial)
);
CREATE INDEX certificates_tenant_id ON certificates (tenant_id, id);
CREATE INDEX certificates_tenant_status ON certificates (tenant_id, status, id);
CREATE INDEX certificates_tenant_issuer ON certificates (tenant_id, issuer_id, id);
CREATE INDEX certificates_tenant_not_after ON certificates (tenant_id, not_after);
CREATE INDEX certificates_tenant_cn ON certificates (tenant_id, common_name);
CREATE INDEX certificates_fingerprint ON certificates (fingerprint);

CREATE TABLE certificate_sans (
    tenant_id       TEXT NOT NULL,
    certificate_id  TEXT NOT NULL REFERENCES certificates(id),
    value           TEXT NOT NULL
);
CREATE INDEX certificate_sans_value ON certificate_sans (tenant_id, value);

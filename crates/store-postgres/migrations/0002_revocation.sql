-- TrustBox schema v2: revocation publishing (CRL shards, OCSP responders, leader leases).
-- Additive only: existing rows get shard 0, one shard per issuer and OCSP enabled.

-- Each certificate is bound at issuance to one CRL shard of its issuer, for life.
ALTER TABLE certificates ADD COLUMN crl_shard BIGINT NOT NULL DEFAULT 0;
-- When the key was known or suspected to be compromised (RFC 5280 §5.3.2), if given.
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;
-- CRL generation reads only this covering index: live revoked entries of one shard.
CREATE INDEX certificates_revoked ON certificates
    (tenant_id, issuer_id, crl_shard, not_after, serial, revoked_at, revocation_reason, invalidity_date)
    WHERE status = 'revoked';
-- OCSP caches on every replica learn recent revocations from this index.
CREATE INDEX certificates_revoked_at ON certificates (tenant_id, revoked_at) WHERE status = 'revoked';

-- Shards per issuer (fixed at creation so a certificate's shard URL never moves).
ALTER TABLE issuers ADD COLUMN crl_shards BIGINT NOT NULL DEFAULT 1;
-- 1 when the issuer's OCSP responder answers and new certificates carry its URL.
ALTER TABLE issuers ADD COLUMN ocsp_enabled BIGINT NOT NULL DEFAULT 1;

-- One row per CRL shard: revision counts revocations into it; a shard is due when
-- revision > published_revision or refresh_at has passed.
CREATE TABLE crl_shards (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    issuer_id           TEXT NOT NULL REFERENCES issuers(id),
    shard               BIGINT NOT NULL,
    revision            BIGINT NOT NULL,
    published_revision  BIGINT NOT NULL,
    crl_number          BIGINT NOT NULL,
    this_update         BIGINT,
    next_update         BIGINT,
    refresh_at          BIGINT,
    der                 BYTEA,
    PRIMARY KEY (issuer_id, shard)
);
CREATE INDEX crl_shards_tenant ON crl_shards (tenant_id, issuer_id, shard);
-- CRLs are mostly random serials: storing them out of line uncompressed saves the futile
-- compression attempt (about 0.8 s for a 50 MB CRL).
ALTER TABLE crl_shards ALTER COLUMN der SET STORAGE EXTERNAL;

-- Delegated OCSP responder certificates; their keys are sealed like CA keys.
CREATE TABLE ocsp_responders (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    issuer_id       TEXT NOT NULL REFERENCES issuers(id),
    certificate_der BYTEA NOT NULL,
    key_backend     TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    key_wrapped     BYTEA NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX ocsp_responders_issuer ON ocsp_responders (tenant_id, issuer_id, not_after);

-- Leader leases for background workers (system rows, not tenant data).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

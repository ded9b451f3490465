-- TrustBox schema v7 (SQLite): ACME accounts and consumed nonces.
--
-- An account belongs to the tenant of the provisioner it registered with; its key is
-- unique per tenant and provisioner. A nonce is verifiable on its own (an HMAC); this table
-- only makes it single-use, and forgets it once it has expired anyway.

CREATE TABLE acme_accounts (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    thumbprint  TEXT NOT NULL,
    jwk         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, provisioner, thumbprint)
);

CREATE TABLE acme_nonces (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    id         TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX acme_nonces_expiry ON acme_nonces (tenant_id, expires_at);

-- TrustBox schema v8 (PostgreSQL): ACME accounts and consumed nonces, tenant-owned under
-- row-level security like every other table.
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

GRANT SELECT, INSERT, UPDATE ON acme_accounts TO trustbox_app;
GRANT SELECT, INSERT, DELETE ON acme_nonces TO trustbox_app;

ALTER TABLE acme_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_accounts TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE acme_nonces ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_nonces FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_nonces TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

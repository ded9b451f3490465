-- TrustBox schema v9 (PostgreSQL): ACME provisioners, external account binding keys, orders,
-- authorizations and challenges.
--
-- A provisioner's name is its URL (`/acme/{name}/`), unique across tenants; its settings
-- (issuer, profiles, challenge types, EAB, ports, rate limits) are one JSON document the
-- seam parses. Orders belong to an account, authorizations to an order, challenges to an
-- authorization, each through a composite key that includes the tenant, so no row can point
-- into another tenant; every table is tenant-owned under row-level security. A provisioner is
-- found by name before its tenant is known (the system path `tb_acme_provisioner`).

CREATE TABLE acme_provisioners (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE acme_eab_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    label       TEXT NOT NULL,
    key_check   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'used', 'revoked')),
    account_id  TEXT,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE acme_accounts ADD COLUMN eab_kid TEXT;

CREATE TABLE acme_orders (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    provisioner    TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    expires_at     BIGINT NOT NULL,
    identifiers    TEXT NOT NULL,
    profile        TEXT,
    not_before     BIGINT,
    not_after      BIGINT,
    replaces       TEXT,
    replaces_ari   TEXT,
    error          TEXT,
    certificate_id TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES acme_accounts (tenant_id, id)
);
CREATE INDEX acme_orders_account ON acme_orders (tenant_id, account_id, created_at);
CREATE INDEX acme_orders_provisioner ON acme_orders (tenant_id, provisioner, created_at);
CREATE INDEX acme_orders_replaces ON acme_orders (tenant_id, replaces) WHERE replaces IS NOT NULL;

CREATE TABLE acme_authorizations (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard         BOOLEAN NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES acme_orders (tenant_id, id)
);
CREATE INDEX acme_authorizations_order ON acme_authorizations (tenant_id, order_id);

CREATE TABLE acme_challenges (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    authz_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at BIGINT,
    error        TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, authz_id) REFERENCES acme_authorizations (tenant_id, id)
);
CREATE INDEX acme_challenges_authz ON acme_challenges (tenant_id, authz_id);
CREATE INDEX acme_challenges_failures ON acme_challenges (tenant_id, status, updated_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON acme_provisioners TO trustbox_app;
GRANT SELECT, INSERT, UPDATE ON acme_eab_keys, acme_orders, acme_authorizations, acme_challenges TO trustbox_app;
GRANT SELECT ON acme_provisioners TO trustbox_system;

ALTER TABLE acme_provisioners ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_provisioners FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_provisioners TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_read ON acme_provisioners FOR SELECT TO trustbox_system USING (true);

ALTER TABLE acme_eab_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_eab_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_eab_keys TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE acme_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_orders TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE acme_authorizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_authorizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_authorizations TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE acme_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE acme_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON acme_challenges TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

-- The system path: which tenant serves /acme/{name}/.
CREATE FUNCTION tb_acme_provisioner(provisioner_name TEXT) RETURNS SETOF acme_provisioners
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM acme_provisioners WHERE name = provisioner_name';
DO $$ BEGIN ALTER FUNCTION tb_acme_provisioner(text) OWNER TO trustbox_system; EXECUTE format('ALTER FUNCTION tb_acme_provisioner(text) SET search_path = %I', current_schema()); REVOKE ALL ON FUNCTION tb_acme_provisioner(text) FROM PUBLIC; GRANT EXECUTE ON FUNCTION tb_acme_provisioner(text) TO trustbox_app; END $$;

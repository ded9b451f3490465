-- TrustBox schema v4 (PostgreSQL): row-level security.
--
-- The server's connections act as `trustbox_app` (SET ROLE at connect), which owns nothing
-- and sees a row only when its tenant_id equals the transaction's `trustbox.tenant` setting
-- (set with set_config(..., true) at the start of every transaction). With no tenant set it
-- sees no row of any table. The few lookups that must cross tenants (a token by its hash,
-- an issuer by its public id, the list of tenants for background workers, the leader lease)
-- are SECURITY DEFINER functions owned by `trustbox_system`, whose only privileges are
-- reading those rows: that is the whole system path, and nothing else can bypass RLS.
-- Statements are split at a semicolon that ends a line, so each DO block is one line.

DO $$ BEGIN CREATE ROLE trustbox_app NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE trustbox_system NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN EXECUTE format('GRANT trustbox_app, trustbox_system TO %I', current_user); EXCEPTION WHEN OTHERS THEN NULL; END $$;
DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO trustbox_app, trustbox_system', current_schema()); END $$;

GRANT SELECT, INSERT, UPDATE ON tenants, tokens, issuers, profiles, certificates, certificate_sans,
    audit_heads, audit_events, crl_shards, ocsp_responders, audit_keys, audit_checkpoints TO trustbox_app;
GRANT SELECT, INSERT ON changes TO trustbox_app;
GRANT SELECT ON tenants, tokens, issuers, changes TO trustbox_system;
GRANT SELECT, INSERT, UPDATE ON leases TO trustbox_system;
GRANT SELECT, UPDATE ON change_counter TO trustbox_system;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants TO trustbox_app
    USING (id = current_setting('trustbox.tenant', true))
    WITH CHECK (id = current_setting('trustbox.tenant', true));
CREATE POLICY system_read ON tenants FOR SELECT TO trustbox_system USING (true);

ALTER TABLE tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tokens TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_read ON tokens FOR SELECT TO trustbox_system USING (true);

ALTER TABLE issuers ENABLE ROW LEVEL SECURITY;
ALTER TABLE issuers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON issuers TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_read ON issuers FOR SELECT TO trustbox_system USING (true);

ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON profiles TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certificates TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE certificate_sans ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificate_sans FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certificate_sans TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE crl_shards ENABLE ROW LEVEL SECURITY;
ALTER TABLE crl_shards FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crl_shards TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE ocsp_responders ENABLE ROW LEVEL SECURITY;
ALTER TABLE ocsp_responders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ocsp_responders TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE audit_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_keys TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));

ALTER TABLE changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON changes TO trustbox_app
    USING (tenant_id = current_setting('trustbox.tenant', true))
    WITH CHECK (tenant_id = current_setting('trustbox.tenant', true));
CREATE POLICY system_read ON changes FOR SELECT TO trustbox_system USING (true);

-- The system path. search_path is pinned to this schema so a caller cannot shadow a table.
CREATE FUNCTION tb_token_by_hash(token_hash TEXT) RETURNS SETOF tokens
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM tokens WHERE hash = token_hash';
CREATE FUNCTION tb_issuer_public(issuer TEXT) RETURNS SETOF issuers
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM issuers WHERE id = issuer';
CREATE FUNCTION tb_tenants() RETURNS SETOF tenants
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM tenants';
CREATE FUNCTION tb_tenant_by_name(tenant_name TEXT) RETURNS SETOF tenants
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM tenants WHERE name = tenant_name';
CREATE FUNCTION tb_try_lease(lease TEXT, lease_holder TEXT, until BIGINT, now_s BIGINT) RETURNS BOOLEAN
    LANGUAGE sql VOLATILE SECURITY DEFINER
    AS 'WITH up AS (INSERT INTO leases (name, holder, expires_at) VALUES (lease, lease_holder, until)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.holder = excluded.holder OR leases.expires_at < now_s RETURNING 1)
        SELECT count(*) = 1 FROM up';
CREATE FUNCTION tb_next_change_seq() RETURNS BIGINT
    LANGUAGE sql VOLATILE SECURITY DEFINER
    AS 'UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq';
CREATE FUNCTION tb_changes_since(after_seq BIGINT, most INT) RETURNS SETOF changes
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT * FROM changes WHERE seq > after_seq ORDER BY seq LIMIT most';
CREATE FUNCTION tb_latest_change() RETURNS BIGINT
    LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT seq FROM change_counter WHERE id = 1';
DO $$ DECLARE f TEXT; BEGIN FOREACH f IN ARRAY ARRAY['tb_token_by_hash(text)', 'tb_issuer_public(text)', 'tb_tenants()', 'tb_tenant_by_name(text)', 'tb_try_lease(text, text, bigint, bigint)', 'tb_next_change_seq()', 'tb_changes_since(bigint, integer)', 'tb_latest_change()'] LOOP EXECUTE format('ALTER FUNCTION %s OWNER TO trustbox_system', f); EXECUTE format('ALTER FUNCTION %s SET search_path = %I', f, current_schema()); EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f); EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO trustbox_app', f); END LOOP; END $$;

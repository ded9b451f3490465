-- An order's authorizations and an authorization's challenges are read in id order: with
-- the id in the index the lookup is a range of it, not a scan of the tenant's whole table
-- in primary-key order (which SQLite chose to satisfy the ORDER BY).
DROP INDEX acme_authorizations_order;
CREATE INDEX acme_authorizations_order ON acme_authorizations (tenant_id, order_id, id);
DROP INDEX acme_challenges_authz;
CREATE INDEX acme_challenges_authz ON acme_challenges (tenant_id, authz_id, id);

-- Indexes no hot write should pay for: orders by provisioner (the provisioner-wide rate
-- limit now reads acme_order_windows below), and every challenge by status when only the
-- failed ones are ever looked up (the failed-validations rate limit).
DROP INDEX acme_orders_provisioner;
DROP INDEX acme_challenges_failures;
CREATE INDEX acme_challenges_failures ON acme_challenges (tenant_id, updated_at)
    WHERE status = 'invalid';

-- New orders per provisioner, counted in 10-minute windows: the provisioner-wide rate limit
-- reads at most seven rows instead of counting every order of the last hour.
CREATE TABLE acme_order_windows (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    provisioner  TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    orders       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provisioner, window_start)
);

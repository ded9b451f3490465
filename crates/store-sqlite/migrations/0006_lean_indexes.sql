-- TrustBox schema v6 (SQLite): drop inventory indexes no query reads.
--
-- Every issuance wrote an entry into each of them, two at random positions (fingerprint,
-- commonName), dirtying index pages the commit then appends to the WAL. Listing by status
-- uses (tenant_id, id) for valid certificates and certificates_revoked_at for revoked
-- ones. An index comes back with the first query that needs it.
DROP INDEX IF EXISTS certificates_fingerprint;
DROP INDEX IF EXISTS certificates_tenant_cn;
DROP INDEX IF EXISTS certificates_tenant_status;

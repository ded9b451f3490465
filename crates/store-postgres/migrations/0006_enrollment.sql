-- TrustBox schema v6 (PostgreSQL): what the seam records of how a certificate was requested.
-- Additive only: existing rows have no enrollment, no idempotency key, replace nothing.

-- How it was enrolled, JSON: protocol, provisioner/label, account, order, transaction.
ALTER TABLE certificates ADD COLUMN enrollment TEXT;
-- The requester's idempotency key: a retried request finds the certificate it got.
ALTER TABLE certificates ADD COLUMN idempotency_key TEXT;
-- The certificate this one replaces (ACME ARI).
ALTER TABLE certificates ADD COLUMN replaces TEXT;
CREATE UNIQUE INDEX certificates_idempotency ON certificates (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A balance moved in from one-api/new-api (`tollgate import`) is its own ledger kind, 'import',
-- beside credits, so that statements and audits tell money paid in here from money carried over.
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check CHECK (kind IN ('credit', 'grant', 'charge', 'release', 'adjustment', 'refund', 'import'));

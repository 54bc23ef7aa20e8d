-- A balance moved in from one-api/new-api (`tollgate import`) is its own ledger kind, 'import',
-- beside credits, so that statements and audits tell money paid in here from money carried over.
-- The column's CHECK has no name to drop it by: MariaDB keeps it with the column (a MODIFY
-- without it drops it), MySQL 8 as a table constraint with a generated name (dropped by that name).
ALTER TABLE ledger MODIFY kind VARCHAR(16) NOT NULL;
SET @drop_check = COALESCE((SELECT CONCAT('ALTER TABLE ledger DROP CHECK `', tc.CONSTRAINT_NAME, '`') FROM information_schema.TABLE_CONSTRAINTS tc JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME WHERE tc.TABLE_SCHEMA = DATABASE() AND tc.TABLE_NAME = 'ledger' AND tc.CONSTRAINT_TYPE = 'CHECK' AND cc.CHECK_CLAUSE LIKE '%`kind`%' LIMIT 1), 'DO 0');
PREPARE drop_check FROM @drop_check;
EXECUTE drop_check;
DEALLOCATE PREPARE drop_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check CHECK (kind IN ('credit', 'grant', 'charge', 'release', 'adjustment', 'refund', 'import'));

-- A balance moved in from one-api/new-api (`tollgate import`) is its own ledger kind, 'import',
-- beside credits, so that statements and audits tell money paid in here from money carried over.
-- SQLite changes a CHECK only by rebuilding its table: the rows, the sequence and the indexes
-- move to a copy with the wider CHECK (nothing references the ledger, no trigger or view reads it).
CREATE TABLE ledger_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id        BIGINT,
    kind          TEXT    NOT NULL CHECK (kind IN ('credit', 'grant', 'charge', 'release', 'adjustment', 'refund', 'import')),
    amount        BIGINT  NOT NULL,
    hold          BIGINT  NOT NULL DEFAULT 0,
    balance_after BIGINT  NOT NULL,
    reference     TEXT,
    reason        TEXT,
    created_at    BIGINT  NOT NULL,
    usage_day     BIGINT
);
INSERT INTO ledger_new (id, user_id, key_id, kind, amount, hold, balance_after, reference, reason, created_at, usage_day)
    SELECT id, user_id, key_id, kind, amount, hold, balance_after, reference, reason, created_at, usage_day FROM ledger;
UPDATE sqlite_sequence SET seq = COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ledger'), seq)
    WHERE name = 'ledger_new';
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_user ON ledger (user_id, id);
CREATE UNIQUE INDEX ledger_reference ON ledger (kind, reference) WHERE reference IS NOT NULL;
CREATE INDEX ledger_usage_day ON ledger (usage_day, user_id) WHERE usage_day IS NOT NULL;

-- Money in and reading usage back: redeem codes (prepaid vouchers), the idempotency of
-- redeem requests, hourly usage aggregates, and indexes for the call-log reads.

-- A batch of codes created in one action; its codes share a value and an expiry.
CREATE TABLE redeem_batches (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    label      VARCHAR(255),
    value      BIGINT NOT NULL CHECK (value > 0),
    count      BIGINT NOT NULL CHECK (count > 0),
    expires_at BIGINT,
    created_by BIGINT,            -- the administrator's user id; NULL for the admin token
    created_at BIGINT NOT NULL
);

-- A code is stored by the SHA-256 of its normalized text, never the text itself. Redeeming is
-- one conditional update from 'unused' (and unexpired) to 'used', with the ledger's 'credit'
-- row (reference 'redeem:<id>') in the same transaction.
CREATE TABLE redeem_codes (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    batch_id   BIGINT NOT NULL,
    code_hash  VARCHAR(128)   NOT NULL UNIQUE,
    prefix     VARCHAR(32)   NOT NULL,   -- display only: "RC-ABCD…"
    value      BIGINT NOT NULL CHECK (value > 0),
    status     VARCHAR(16)   NOT NULL DEFAULT 'unused' CHECK (status IN ('unused', 'used', 'voided')),
    expires_at BIGINT,
    used_by    BIGINT,
    used_at    BIGINT,
    voided_at  BIGINT,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (batch_id) REFERENCES redeem_batches (id),
    FOREIGN KEY (used_by) REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX redeem_codes_batch ON redeem_codes (batch_id, id);
CREATE INDEX redeem_codes_status ON redeem_codes (status, id);

-- The first answer to a redeem request sent with an Idempotency-Key, per user.
CREATE TABLE redeem_requests (
    user_id         BIGINT NOT NULL,
    idempotency_key VARCHAR(255)   NOT NULL,
    code_hash       VARCHAR(128)   NOT NULL,
    code_id         BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- Calls per user, key (0: none), model and hour (unix ms of its start), written in the same
-- transaction as the usage rows they sum: the sum over aggregates is the sum over raw rows.
CREATE TABLE usage_hourly (
    user_id           BIGINT NOT NULL,
    hour              BIGINT NOT NULL,
    key_id            BIGINT NOT NULL,
    model             VARCHAR(256)   NOT NULL,
    requests          BIGINT NOT NULL,
    failures          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    cost              BIGINT NOT NULL,
    PRIMARY KEY (user_id, hour, key_id, model)
);
CREATE INDEX usage_hourly_hour ON usage_hourly (hour);

INSERT INTO usage_hourly
SELECT user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model, COUNT(*),
       SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens),
       SUM(completion_tokens), SUM(cached_tokens), SUM(cost)
FROM usage_logs
GROUP BY user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model;

-- Newest first, by time then id, for one user and for everyone.
DROP INDEX usage_logs_user_time ON usage_logs;
DROP INDEX usage_logs_time ON usage_logs;
CREATE INDEX usage_logs_user_time ON usage_logs (user_id, created_at, id);
CREATE INDEX usage_logs_time ON usage_logs (created_at, id);
-- The logs' filter by model, newest first, however the user's other models are spread.
CREATE INDEX usage_logs_user_model ON usage_logs (user_id, model, created_at, id);
-- The failed calls (a few percent of rows) of one user, for the logs' `status=error` filter.
CREATE INDEX usage_logs_user_errors ON usage_logs (user_id, status, created_at, id);

-- A multiplier's change moves the catalog fingerprint, so every instance reloads it.
ALTER TABLE group_multipliers ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;

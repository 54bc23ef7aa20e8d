-- Alerts. What each user (scope 'user:<id>') and the system (scope 'system') watches and where
-- they are told; booleans are 0/1 integers. The webhook secret is kept as given: it signs each
-- delivery (HMAC-SHA256), so it cannot be a digest; it is never shown or logged.
CREATE TABLE alert_settings (
    scope           VARCHAR(64)   PRIMARY KEY,
    user_id         BIGINT,
    email           VARCHAR(320),
    webhook_url     VARCHAR(2048),
    webhook_secret  VARCHAR(256),
    balance_below   BIGINT,
    key_cap_percent BIGINT,
    channels        BIGINT NOT NULL DEFAULT 0,
    ledger_drift    BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- The last verdict seen for each watched subject ('balance:<user>', 'key:<id>', 'channel:<id>',
-- 'ledger'): an alert is raised by the one conditional update that changes it, so there is one
-- per crossing however many instances or runs see it.
CREATE TABLE alert_state (
    subject    VARCHAR(128)   PRIMARY KEY,
    user_id    BIGINT,
    crossed    BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX alert_state_user ON alert_state (user_id);

-- Raised alerts (kept as long as job runs, retention.job_runs_days), and their deliveries: an
-- outbox the alerts job sends from, retrying with backoff.
CREATE TABLE alerts (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_id   VARCHAR(64)   NOT NULL UNIQUE,
    scope      VARCHAR(64)   NOT NULL,
    user_id    BIGINT,
    kind       VARCHAR(32)   NOT NULL,
    name       VARCHAR(255),
    amount     BIGINT,
    threshold  BIGINT,
    message    VARCHAR(2048)   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX alerts_scope ON alerts (scope, id);
CREATE INDEX alerts_created_at ON alerts (created_at);

CREATE TABLE alert_deliveries (
    id              BIGINT AUTO_INCREMENT PRIMARY KEY,
    alert_id        BIGINT NOT NULL,
    target          VARCHAR(16)   NOT NULL CHECK (target IN ('webhook', 'email')),
    address         VARCHAR(2048)   NOT NULL,
    status          VARCHAR(16)   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      VARCHAR(2048),
    sent_at         BIGINT,
    FOREIGN KEY (alert_id) REFERENCES alerts (id) ON DELETE CASCADE
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

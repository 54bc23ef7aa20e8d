-- Gateway core: API keys, channels, model mappings, versioned prices, the ledger, credit grants
-- and usage logs. Money is integer units (1 unit = 1e-6 USD). Booleans are 0/1 integers.

-- Money held by open credit grants (instances serve requests from them in memory).
-- Invariants: balance = SUM(ledger.amount), reserved = SUM(ledger.hold), 0 <= reserved <= balance.
ALTER TABLE users ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0);

CREATE TABLE api_keys (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id        BIGINT  NOT NULL,
    name           VARCHAR(255)    NOT NULL,
    key_hash       VARCHAR(128)    NOT NULL UNIQUE,   -- SHA-256 of the secret; the secret is never stored
    prefix         VARCHAR(32)    NOT NULL,          -- display only: "sk-AbCd…"
    status         VARCHAR(16)    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    expires_at     BIGINT,
    allowed_models TEXT    NOT NULL DEFAULT ('[]'),
    allowed_ips    TEXT    NOT NULL DEFAULT ('[]'),
    spend_cap      BIGINT,
    spent          BIGINT  NOT NULL DEFAULT 0,
    reserved       BIGINT  NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    rpm            BIGINT,
    tpm            BIGINT,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE channels (
    id                    BIGINT AUTO_INCREMENT PRIMARY KEY,
    name                  VARCHAR(255)    NOT NULL UNIQUE,
    base_url              VARCHAR(2048)    NOT NULL,
    api_key               VARCHAR(4096)    NOT NULL,   -- write-only: no API returns it
    models                TEXT    NOT NULL DEFAULT ('[]'),
    priority              BIGINT  NOT NULL DEFAULT 0,
    weight                BIGINT  NOT NULL DEFAULT 1,
    connect_timeout_ms    BIGINT  NOT NULL DEFAULT 5000,
    first_byte_timeout_ms BIGINT  NOT NULL DEFAULT 60000,
    idle_timeout_ms       BIGINT  NOT NULL DEFAULT 120000,
    enabled               BIGINT  NOT NULL DEFAULT 1,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);

-- A public model name and its ordered fallback list of upstream model names.
CREATE TABLE model_mappings (
    model      VARCHAR(256)   PRIMARY KEY,
    targets    TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Prices in units per 1M tokens (and per request). A change adds a version; charges record it.
CREATE TABLE prices (
    id                  BIGINT AUTO_INCREMENT PRIMARY KEY,
    model               VARCHAR(256)    NOT NULL,
    version             BIGINT  NOT NULL,
    input_per_1m        BIGINT  NOT NULL,
    output_per_1m       BIGINT  NOT NULL,
    cached_input_per_1m BIGINT  NOT NULL,
    per_request         BIGINT  NOT NULL DEFAULT 0,
    active              BIGINT  NOT NULL DEFAULT 1,
    created_at          BIGINT  NOT NULL,
    UNIQUE (model, version)
);

-- Price multiplier per user group, in thousandths (1000 = x1).
CREATE TABLE group_multipliers (
    user_group       VARCHAR(64)   PRIMARY KEY,
    multiplier_milli BIGINT NOT NULL CHECK (multiplier_milli >= 0)
);

-- Append-only. amount: change of users.balance; hold: change of users.reserved.
CREATE TABLE ledger (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id       BIGINT  NOT NULL,
    key_id        BIGINT,
    kind          VARCHAR(16)    NOT NULL CHECK (kind IN ('credit', 'grant', 'charge', 'release', 'adjustment', 'refund')),
    amount        BIGINT  NOT NULL,
    hold          BIGINT  NOT NULL DEFAULT 0,
    balance_after BIGINT  NOT NULL,
    reference     VARCHAR(255),
    reason        VARCHAR(1024),
    created_at    BIGINT  NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ledger_user ON ledger (user_id, id);
-- Idempotency: one row per (kind, reference), e.g. one charge per reported batch.
CREATE UNIQUE INDEX ledger_reference ON ledger (kind, reference);

-- Running gateway instances, for the sweeper that closes grants of stopped instances.
CREATE TABLE instances (
    id           VARCHAR(128)   PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE credit_grants (
    id          VARCHAR(128)   PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    key_id      BIGINT,
    instance_id VARCHAR(128)   NOT NULL,
    amount      BIGINT NOT NULL,
    used        BIGINT NOT NULL DEFAULT 0,
    status      VARCHAR(16)   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    closed_at   BIGINT,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX credit_grants_open ON credit_grants (status, instance_id);

CREATE TABLE usage_logs (
    id                BIGINT AUTO_INCREMENT PRIMARY KEY,
    request_id        VARCHAR(128)    NOT NULL,
    user_id           BIGINT  NOT NULL,
    key_id            BIGINT,
    key_prefix        VARCHAR(32),
    model             VARCHAR(256)    NOT NULL,
    served_model      VARCHAR(256),
    channel_id        BIGINT,
    attempts          BIGINT  NOT NULL DEFAULT 0,
    stream            BIGINT  NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT  NOT NULL DEFAULT 0,
    completion_tokens BIGINT  NOT NULL DEFAULT 0,
    cached_tokens     BIGINT  NOT NULL DEFAULT 0,
    cost              BIGINT  NOT NULL DEFAULT 0,
    price_version     BIGINT,
    usage_source      VARCHAR(16)    NOT NULL DEFAULT 'upstream' CHECK (usage_source IN ('upstream', 'estimated', 'partial', 'none')),
    status            BIGINT  NOT NULL,
    error_class       VARCHAR(255),
    latency_ms        BIGINT  NOT NULL DEFAULT 0,
    ttft_ms           BIGINT,
    client_ip         VARCHAR(64),
    created_at        BIGINT  NOT NULL
);
CREATE INDEX usage_logs_user_time ON usage_logs (user_id, created_at);
CREATE INDEX usage_logs_time ON usage_logs (created_at);

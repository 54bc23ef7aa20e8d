-- Accounts and console sessions. Money is integer units (1 unit = 1e-6 USD).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    user_group    TEXT    NOT NULL DEFAULT 'default',
    balance       BIGINT  NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- A session is stored by the SHA-256 of its cookie token, never the token itself.
CREATE TABLE sessions (
    id           TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

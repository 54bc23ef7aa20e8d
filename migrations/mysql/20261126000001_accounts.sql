-- Accounts and console sessions. Money is integer units (1 unit = 1e-6 USD).
-- Text compares byte for byte, as on SQLite and PostgreSQL.
ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE TABLE users (
    id            BIGINT  AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64)    NOT NULL UNIQUE,
    password_hash VARCHAR(255)    NOT NULL,
    role          VARCHAR(16)    NOT NULL CHECK (role IN ('user', 'admin')),
    status        VARCHAR(16)    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    user_group    VARCHAR(64)    NOT NULL DEFAULT 'default',
    balance       BIGINT  NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- A session is stored by the SHA-256 of its cookie token, never the token itself.
CREATE TABLE sessions (
    id           VARCHAR(128)   PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           VARCHAR(64),
    user_agent   VARCHAR(512),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

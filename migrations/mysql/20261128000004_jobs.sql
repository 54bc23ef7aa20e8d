-- Scheduled jobs. A run takes its job's lease (one holder at a time, with an expiry that the
-- holder renews) and advances `last_tick`, so that each scheduled time runs once across every
-- instance sharing the database, and never twice at once.
CREATE TABLE job_leases (
    job        VARCHAR(64)   PRIMARY KEY,
    holder     VARCHAR(128),
    expires_at BIGINT NOT NULL DEFAULT 0,
    last_tick  BIGINT NOT NULL DEFAULT 0
);

-- One row per run: the scheduled time it ran for (or when it was asked for, by hand), where,
-- how long, and how it ended.
CREATE TABLE job_runs (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    job         VARCHAR(64)   NOT NULL,
    tick        BIGINT NOT NULL,
    manual      BIGINT NOT NULL DEFAULT 0,
    instance    VARCHAR(128)   NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     VARCHAR(16)   NOT NULL CHECK (outcome IN ('running', 'ok', 'failed')),
    detail      TEXT,
    error       TEXT
);
CREATE INDEX job_runs_job ON job_runs (job, id);

-- Probe results of every channel, from whichever instance probed: the admin console and the
-- status page read them, and every instance opens or closes its circuit by the latest one.
CREATE TABLE channel_probes (
    channel_id BIGINT NOT NULL PRIMARY KEY,
    at         BIGINT NOT NULL,
    ok         BIGINT NOT NULL,
    status     BIGINT,
    latency_ms BIGINT NOT NULL,
    error      VARCHAR(2048),
    failures   BIGINT NOT NULL DEFAULT 0
);

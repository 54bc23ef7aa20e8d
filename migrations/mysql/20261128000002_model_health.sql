-- What the gateway has seen of each public model, per minute, for the status page: calls that
-- reached the routing (client errors left out), the ones that failed on the upstream side, and
-- the latency sums of the answered ones. Written with the usage rows, in their transaction.
CREATE TABLE model_health (
    model        VARCHAR(256)   NOT NULL,
    minute       BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    latency_ms   BIGINT NOT NULL,
    ttft_ms      BIGINT NOT NULL,
    ttft_count   BIGINT NOT NULL,
    PRIMARY KEY (model, minute)
);
CREATE INDEX model_health_minute ON model_health (minute);

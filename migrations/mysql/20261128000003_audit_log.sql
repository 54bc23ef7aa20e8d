-- Every administrator's action, by the service layer (REST API and console alike): who did it
-- (a user, or the admin token when actor_id is NULL), what, to what, and the thing before and
-- after as JSON (never a secret: keys, codes and upstream keys are recorded by their views).
CREATE TABLE audit_log (
    id        BIGINT AUTO_INCREMENT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor_id  BIGINT,
    actor     VARCHAR(255)   NOT NULL,
    action    VARCHAR(64)   NOT NULL,
    target    VARCHAR(512)   NOT NULL,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

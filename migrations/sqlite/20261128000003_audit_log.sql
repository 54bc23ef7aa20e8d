-- Every administrator's action, by the service layer (REST API and console alike): who did it
-- (a user, or the admin token when actor_id is NULL), what, to what, and the thing before and
-- after as JSON (never a secret: keys, codes and upstream keys are recorded by their views).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    actor_id  BIGINT,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    target    TEXT   NOT NULL,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

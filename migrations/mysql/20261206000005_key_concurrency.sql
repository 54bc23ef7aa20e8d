-- Calls a key may have in flight at once (none: its group's, else the default, else any).
ALTER TABLE api_keys ADD COLUMN max_concurrent BIGINT;

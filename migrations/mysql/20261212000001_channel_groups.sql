-- The user groups whose keys a channel serves, a JSON list of group names; empty: every group.
-- (Not "groups": a reserved word on MySQL 8.)
ALTER TABLE channels ADD COLUMN user_groups TEXT NOT NULL DEFAULT ('[]');

-- Azure channels: the `api-version` of their deployment URLs (none: the v1 API).
ALTER TABLE channels ADD COLUMN api_version VARCHAR(64);

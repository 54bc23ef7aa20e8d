-- What OpenAI-compatible servers get wrong, per channel: the field a chat call's output bound
-- goes in (none: the kind's), and whether streams may ask for usage.
ALTER TABLE channels ADD COLUMN max_tokens_field VARCHAR(64);
ALTER TABLE channels ADD COLUMN stream_usage BIGINT NOT NULL DEFAULT 1;

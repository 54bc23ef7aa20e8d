-- One normalized usage per call: besides the input (cache reads and writes included), output
-- (reasoning included) and cache reads, the kinds of tokens providers report apart, each
-- resolved once by its adapter; the route the client called and the kind of the channel that
-- answered. Rows from before read as 0 and `chat` (the only route there was), kind unknown.
ALTER TABLE usage_logs ADD COLUMN cache_write_5m_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN image_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN image_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN audio_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN audio_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN surface VARCHAR(32) NOT NULL DEFAULT 'chat';
ALTER TABLE usage_logs ADD COLUMN upstream_kind VARCHAR(32);

-- The hourly sums the dashboard draws gain cache writes and reasoning.
ALTER TABLE usage_hourly ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;

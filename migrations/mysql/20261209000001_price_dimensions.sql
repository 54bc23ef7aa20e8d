-- A price for every kind of token: cache writes by lifetime, reasoning, image and audio input
-- and output (NULL: charged at the input or the output rate, as the README's prices say), the
-- model's most output tokens (NULL: billing.default_max_tokens), and long-context tiers as a
-- JSON array of {above_tokens, input_per_1m, output_per_1m, ...} in units, ascending.
ALTER TABLE prices ADD COLUMN cache_write_5m_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN cache_write_1h_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN reasoning_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN image_input_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN image_output_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN audio_input_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN audio_output_per_1m BIGINT;
ALTER TABLE prices ADD COLUMN max_output_tokens BIGINT;
ALTER TABLE prices ADD COLUMN tiers TEXT NOT NULL DEFAULT ('[]');

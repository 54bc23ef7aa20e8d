-- A non-stream call's own wait for its answer (a reasoning model may think for minutes before
-- the first byte); `first_byte_timeout_ms` is a stream's.
ALTER TABLE channels ADD COLUMN answer_timeout_ms BIGINT NOT NULL DEFAULT 600000;
